{{/*
The objects of one service. Each takes (dict "root" $ "name" <name> "service" <merged
entry> "services" <all merged entries>) and is rendered by services.yaml for every
entry of `services:`: a new service never needs a template of its own.

A canary's are the same templates with "workload" <name>-canary (the names of its
objects and its selector labels, so that no selector of one track matches the other's
pods), "track" canary, "version" its version and "service" the entry with the canary's
env, replicas and image.
*/}}

{{/* The plain environment of a service: values.yaml env plus what the platform provides
(the same variables devstack/render.py replica_env gives a replica). */}}
{{- define "agora.serviceEnv" -}}
{{- $root := .root -}}
{{- $env := deepCopy .service.env -}}
{{- $_ := set $env "SERVICE_NAME" .name -}}
{{- $_ := set $env "BIND_HOST" "0.0.0.0" -}}
{{- $_ := set $env "PORT" (toString .service.port) -}}
{{- $_ := set $env "WEB_CONCURRENCY" (toString .service.workers) -}}
{{- $_ := set $env "PROMETHEUS_MULTIPROC_DIR" (include "agora.metricsDir" $root) -}}
{{- $_ := set $env "PYTHONUNBUFFERED" "1" -}}
{{- if .service.postgres -}}
{{- $_ := set $env "DATABASE_URL" (include "agora.databaseUrl" (dict "root" $root "name" .service.database)) -}}
{{- end -}}
{{- if ne .service.auth "none" -}}
{{- $_ := set $env "AUTH_PUBLIC_KEY_FILE" (printf "%s/public.pem" (include "agora.auth.dir" $root)) -}}
{{- end -}}
{{- if eq .service.auth "sign" -}}
{{- $_ := set $env "AUTH_PRIVATE_KEY_FILE" (printf "%s/private.pem" (include "agora.auth.signingDir" $root)) -}}
{{- end -}}
{{- with .variant -}}
{{- /* an A/B test's variant of this track: the service knows which one it serves */ -}}
{{- $_ := set $env "AB_VARIANT" . -}}
{{- end -}}
{{- if include "agora.impersonation.mounted" . -}}
{{- $_ := set $env "IMPERSONATION_CREDENTIAL_FILE" (printf "%s/credential" (include "agora.impersonation.dir" $root)) -}}
{{- end -}}
{{- range .service.upstreams -}}
{{- $upstream := get $.services . -}}
{{- $_ := set $env (printf "%s_URL" (include "agora.envName" .)) (printf "http://%s:%v" . $upstream.port) -}}
{{- end -}}
{{- with include "agora.tracingEndpoint" $root -}}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" . -}}
{{- $_ := set $env "OTEL_TRACES_SAMPLER" $root.Values.tracing.sampler -}}
{{- $_ := set $env "OTEL_TRACES_SAMPLER_ARG" (toString $root.Values.tracing.ratio) -}}
{{- end -}}
{{- if eq .name (include "agora.defaultBackend" $root) -}}
{{- /* The ingress's error backend: a path of another service's prefix reaching it means
that service has no ready replica (services/kit/ingress_errors.py). Chart only. */ -}}
{{- $_ := set $env "INGRESS_ROUTES" (include "agora.ingressRoutes" $root) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{- define "agora.configMap" -}}
{{- $workload := .workload | default .name -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $workload }}-env
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "agora.labels" (dict "root" .root "name" $workload "component" "service" "version" .version) | nindent 4 }}
data:
  {{- include "agora.serviceEnv" . | nindent 2 }}
{{- end -}}

{{/* SIGTERM comes after the preStop sleep; gunicorn then has SHUTDOWN_GRACE seconds
(drain included) before it kills its workers. A few seconds more for the exit itself. */}}
{{- define "agora.terminationGrace" -}}
{{- $shutdown := .service.env.SHUTDOWN_GRACE | default "20" | float64 | ceil | int -}}
{{- add .service.preStopSleep $shutdown 5 -}}
{{- end -}}

{{- define "agora.deployment" -}}
{{- $root := .root -}}
{{- $service := .service -}}
{{- $workload := .workload | default .name -}}
{{- $selector := dict "root" $root "name" $workload -}}
{{- $labels := include "agora.labels" (dict "root" $root "name" $workload "component" "service" "version" .version) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $workload }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- $labels | nindent 4 }}
spec:
  {{- if not $service.autoscaling.enabled }}
  replicas: {{ $service.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "agora.selectorLabels" $selector | nindent 6 }}
  template:
    metadata:
      labels:
        {{- $labels | nindent 8 }}
        track: {{ .track | default "stable" }}  # Prometheus' `track` label
        {{- with .variant }}
        variant: {{ . }}  # an A/B test's variant, Prometheus' `variant` label
        {{- end }}
      annotations:
        checksum/env: {{ include "agora.serviceEnv" . | sha256sum }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $service.port | quote }}
        prometheus.io/path: /metrics
    spec:
      serviceAccountName: {{ include "agora.componentName" (dict "root" $root "component" "service") }}
      automountServiceAccountToken: false
      enableServiceLinks: false  # no <SERVICE>_PORT variables beside the kit's settings
      securityContext:
        {{- include "agora.podSecurityContext" (dict "uid" (include "agora.uid" $root)) | nindent 8 }}
      terminationGracePeriodSeconds: {{ include "agora.terminationGrace" . }}
      {{- if $service.postgres }}
      initContainers:
        {{- include "agora.waitForPostgres" (dict "root" $root "name" $service.database) | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "agora.selectorLabels" $selector | nindent 14 }}
          matchLabelKeys: [pod-template-hash]
      containers:
        - name: {{ .name }}
          image: {{ include "agora.serviceImage" (dict "root" $root "image" $service.image) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- toYaml $service.command | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ $service.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ $workload }}-env
          {{- if or $service.postgres $service.redis }}
          env:
            {{- if $service.postgres }}
            {{- include "agora.databasePasswordEnv" (dict "root" $root "name" $service.database) | nindent 12 }}
            {{- end }}
            {{- if $service.redis }}
            {{- include "agora.redisEnv" $root | nindent 12 }}
            {{- end }}
          {{- end }}
          # Started once the event loop answers; ready while it can take traffic; alive
          # while the loop answers at all (never a dependency check).
          startupProbe:
            httpGet: {path: {{ $service.probes.startup }}, port: http}
            periodSeconds: 1
            timeoutSeconds: 2
            failureThreshold: 60
          readinessProbe:
            httpGet: {path: {{ $service.probes.readiness }}, port: http}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          livenessProbe:
            httpGet: {path: {{ $service.probes.liveness }}, port: http}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $service.preStopSleep }}
          resources:
            {{- toYaml $service.resources | nindent 12 }}
          securityContext:
            {{- include "agora.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "agora.scratchVolumeMounts" $root | nindent 12 }}
            {{- if ne $service.auth "none" }}
            - name: auth-public
              mountPath: {{ include "agora.auth.dir" $root }}
              readOnly: true
            {{- end }}
            {{- if eq $service.auth "sign" }}
            - name: auth-signing
              mountPath: {{ include "agora.auth.signingDir" $root }}
              readOnly: true
            {{- end }}
            {{- if include "agora.impersonation.mounted" . }}
            - name: impersonation
              mountPath: {{ include "agora.impersonation.dir" $root }}
              readOnly: true
            {{- end }}
      volumes:
        {{- include "agora.scratchVolumes" $root | nindent 8 }}
        {{- if ne $service.auth "none" }}
        - name: auth-public
          configMap:
            name: {{ include "agora.auth.publicName" $root }}
            defaultMode: 0444
        {{- end }}
        {{- if eq $service.auth "sign" }}
        - name: auth-signing
          secret:
            secretName: {{ include "agora.auth.secretName" $root }}
            defaultMode: 0440  # group-readable: the pod's fsGroup is the image's user
            items:
              - {key: private.pem, path: private.pem}
        {{- end }}
        {{- if include "agora.impersonation.mounted" . }}
        - name: impersonation
          secret:
            secretName: {{ include "agora.impersonation.secretName" $root }}
            defaultMode: 0440
            items:
              - {key: credential, path: credential}
        {{- end }}
{{- end -}}

{{- define "agora.service" -}}
{{- $workload := .workload | default .name -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $workload }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "agora.labels" (dict "root" .root "name" $workload "component" "service" "version" .version) | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "agora.selectorLabels" (dict "root" .root "name" $workload) | nindent 4 }}
  ports:
    - name: http
      port: {{ .service.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{- define "agora.hpa" -}}
{{- $scaling := .service.autoscaling -}}
{{- $workload := .workload | default .name -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $workload }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "agora.labels" (dict "root" .root "name" $workload "component" "service" "version" .version) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $workload }}
  minReplicas: {{ $scaling.minReplicas }}
  maxReplicas: {{ $scaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $scaling.targetCPUUtilizationPercentage }}
{{- end -}}

{{/* maxUnavailable (never minAvailable = replicas) and AlwaysAllow for unhealthy pods:
a node drain is never blocked. */}}
{{- define "agora.pdb" -}}
{{- $workload := .workload | default .name -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $workload }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "agora.labels" (dict "root" .root "name" $workload "component" "service" "version" .version) | nindent 4 }}
spec:
  maxUnavailable: {{ .service.pdb.maxUnavailable }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "agora.selectorLabels" (dict "root" .root "name" $workload) | nindent 6 }}
{{- end -}}

{{/* Who may call a service and whom it may call: the ingress controller (when it routes
to it), Prometheus, the services that name it as an upstream and `helm test`; and its
upstreams, its PostgreSQL and Redis when values say so, and its own `egress` rules. A
canary is called by the ingress controller, Prometheus and `helm test` only: other
services call stable, through its Service. */}}
{{- define "agora.networkPolicy" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $workload := .workload | default .name -}}
{{- $service := .service -}}
{{- $port := $service.port -}}
{{- $callers := list "tests" -}}
{{- if not .workload -}}
{{- range $caller, $other := .services -}}
{{- if has $name $other.upstreams -}}{{- $callers = append $callers $caller -}}{{- end -}}
{{- end -}}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $workload }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "agora.labels" (dict "root" $root "name" $workload "component" "service" "version" .version) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "agora.selectorLabels" (dict "root" $root "name" $workload) | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if and $root.Values.ingress.enabled (or $service.ingress $service.websockets (eq $name (include "agora.defaultBackend" $root))) }}
    - from:
        - namespaceSelector:
            {{- toYaml $root.Values.networkPolicy.ingressController.namespaceSelector | nindent 12 }}
          podSelector:
            {{- toYaml $root.Values.networkPolicy.ingressController.podSelector | nindent 12 }}
      ports: [{port: {{ $port }}, protocol: TCP}]
    {{- end }}
    {{- if or $root.Values.prometheus.enabled $root.Values.networkPolicy.extraPrometheus }}
    - from:
        {{- if $root.Values.prometheus.enabled }}
        - podSelector:
            matchLabels:
              {{- include "agora.selectorLabels" (dict "root" $root "name" "prometheus") | nindent 14 }}
        {{- end }}
        {{- with $root.Values.networkPolicy.extraPrometheus }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports: [{port: {{ $port }}, protocol: TCP}]
    {{- end }}
    - from:
        - podSelector:
            matchExpressions:
              - {key: app.kubernetes.io/instance, operator: In, values: [{{ $root.Release.Name }}]}
              - {key: app.kubernetes.io/name, operator: In, values: {{ toJson $callers }}}
      ports: [{port: {{ $port }}, protocol: TCP}]
  {{- $tracing := include "agora.tracingEndpoint" $root }}
  {{- if not (or $service.upstreams $service.postgres $service.redis $service.egress $tracing) }}
  egress: []  # nothing but DNS (the namespace-wide policy)
  {{- else }}
  egress:
    {{- range $service.upstreams }}
    - to:
        - podSelector:
            matchLabels:
              {{- include "agora.selectorLabels" (dict "root" $root "name" .) | nindent 14 }}
      ports: [{port: {{ (get $.services .).port }}, protocol: TCP}]
    {{- end }}
    {{- if $service.postgres }}
    {{- include "agora.postgresPeer" $root | nindent 4 }}
    {{- end }}
    {{- if $service.redis }}
    {{- include "agora.redisPeer" $root | nindent 4 }}
    {{- end }}
    {{- with $service.egress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- if $root.Values.tracing.collector.enabled }}
    - to:
        - podSelector:
            matchLabels:
              {{- include "agora.selectorLabels" (dict "root" $root "name" "otel-collector") | nindent 14 }}
      ports: [{port: 4318, protocol: TCP}]
    {{- else if $tracing }}
    {{- with $root.Values.tracing.egress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- end }}
  {{- end }}
{{- end -}}

{{/* An egress rule to PostgreSQL: its pods, or any address on the external port. */}}
{{- define "agora.postgresPeer" -}}
- to:
    {{- if .Values.postgresql.enabled }}
    - podSelector:
        matchLabels:
          {{- include "agora.selectorLabels" (dict "root" . "name" "postgresql") | nindent 10 }}
    {{- else }}
    - ipBlock: {cidr: 0.0.0.0/0}
    {{- end }}
  ports: [{port: {{ include "agora.postgres.port" . }}, protocol: TCP}]
{{- end -}}

{{- define "agora.redisPeer" -}}
- to:
    {{- if .Values.redis.enabled }}
    - podSelector:
        matchLabels:
          {{- include "agora.selectorLabels" (dict "root" . "name" "redis") | nindent 10 }}
    {{- else }}
    - ipBlock: {cidr: 0.0.0.0/0}
    {{- end }}
  ports: [{port: {{ include "agora.redis.port" . }}, protocol: TCP}]
{{- end -}}
