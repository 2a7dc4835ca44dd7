{{/*
Names, labels and the values every template derives from values.yaml.
*/}}

{{- define "agora.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of a platform component: <fullname>-postgresql, <fullname>-redis, ... */}}
{{- define "agora.componentName" -}}
{{- printf "%s-%s" (include "agora.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of a workload, never free-form. (dict root name) */}}
{{- define "agora.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Every label: the selector labels plus what describes the release.
(dict root name component [version]: a workload's own version, the chart's appVersion by default) */}}
{{- define "agora.labels" -}}
{{ include "agora.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: agora
app.kubernetes.io/version: {{ .version | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Every pod of this release (the scope of the default-deny and DNS policies). */}}
{{- define "agora.releaseSelector" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The enabled services, each merged over `default:` (maps merged, lists replaced: the
same fallback devstack/topology.py applies), as JSON: fromJson (include "agora.services" .)
*/}}
{{- define "agora.services" -}}
{{- $services := dict -}}
{{- range $name, $entry := .Values.services -}}
{{- $service := mergeOverwrite (deepCopy $.Values.default) (deepCopy (default dict $entry)) -}}
{{- if $service.enabled -}}
{{- $_ := set $services $name $service -}}
{{- end -}}
{{- end -}}
{{- $routes := dict -}}
{{- range $name, $service := $services -}}
{{- if not $service.command -}}
{{- fail (printf "services.%s.command is required" $name) -}}
{{- end -}}
{{- /* An upstream that is a disabled service is dropped (no <NAME>_URL, no policy),
as devstack does: facts then falls back to the public API when factsource is off. */ -}}
{{- $enabled := list -}}
{{- range $service.upstreams -}}
{{- if hasKey $services . -}}
{{- $enabled = append $enabled . -}}
{{- else if not (hasKey $.Values.services .) -}}
{{- fail (printf "services.%s.upstreams: %s is not a service" $name .) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $service "upstreams" $enabled -}}
{{- /* The database a service with postgres uses: its own unless `database` names another
service's (one bounded context, one schema: that service's migrations, role and password). */ -}}
{{- if $service.postgres -}}
{{- $database := $service.database | default $name -}}
{{- if not (hasKey $.Values.services $database) -}}
{{- fail (printf "services.%s.database: %s is not a service" $name $database) -}}
{{- end -}}
{{- $_ := set $service "database" $database -}}
{{- else if $service.database -}}
{{- fail (printf "services.%s.database needs postgres: true" $name) -}}
{{- end -}}
{{- /* Fault injection makes requests fail on purpose: only where values allow it. */ -}}
{{- $envs := list $service.env -}}
{{- if $service.canary.enabled -}}{{- $envs = append $envs $service.canary.env -}}{{- end -}}
{{- range $env := $envs -}}
{{- range $variable := list "FAULT_ERROR_RATE" "FAULT_LATENCY_MS" -}}
{{- $value := toString (get (default dict $env) $variable) -}}
{{- if and $value (gt (float64 $value) 0.0) (not $.Values.faultInjection.allowed) -}}
{{- fail (printf "services.%s: %s=%s injects faults; set faultInjection.allowed=true to allow it" $name $variable $value) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $service.canary.enabled (not (and $.Values.ingress.enabled (or $service.ingress $service.websockets))) -}}
{{- fail (printf "services.%s.canary: the service has no ingress paths (or ingress.enabled is false), so a canary would get no traffic" $name) -}}
{{- end -}}
{{- range concat $service.ingress $service.websockets -}}
{{- $path := include "agora.routePath" . -}}
{{- if hasKey $routes $path -}}
{{- fail (printf "ingress path %s is claimed by both %s and %s" $path (get $routes $path) $name) -}}
{{- end -}}
{{- $_ := set $routes $path $name -}}
{{- end -}}
{{- end -}}
{{- toJson $services -}}
{{- end -}}

{{/* Every enabled service's ingress prefixes (HTTP and WebSocket), as JSON {prefix: service}. */}}
{{- define "agora.ingressRoutes" -}}
{{- $routes := dict -}}
{{- range $name, $service := fromJson (include "agora.services" .) -}}
{{- range concat $service.ingress $service.websockets -}}
{{- $_ := set $routes (include "agora.routePath" .) $name -}}
{{- end -}}
{{- end -}}
{{- toJson $routes -}}
{{- end -}}

{{/* ingress.defaultBackend, checked: "" (none) or an enabled service that can take
ingress-nginx's error pages (rewritten to "/", so it must not route "/" itself). */}}
{{- define "agora.defaultBackend" -}}
{{- $name := .Values.ingress.defaultBackend -}}
{{- if and .Values.ingress.enabled $name -}}
{{- if not (hasKey (fromJson (include "agora.services" .)) $name) -}}
{{- fail (printf "ingress.defaultBackend: %s is not an enabled service" $name) -}}
{{- end -}}
{{- if and .Values.ingress.errorPages (eq (get (fromJson (include "agora.ingressRoutes" .)) "/" | toString) $name) -}}
{{- fail (printf "ingress.defaultBackend: %s routes \"/\", where ingress-nginx sends error pages: pick another service, or set ingress.errorPages to []" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}
{{- end -}}

{{/* An ingress prefix as devstack routes it: without a trailing slash, "/" for the root. */}}
{{- define "agora.routePath" -}}
{{- trimSuffix "/" . | default "/" -}}
{{- end -}}

{{/* catalog -> CATALOG, crawler-worker -> CRAWLER_WORKER */}}
{{- define "agora.envName" -}}
{{- . | upper | replace "-" "_" -}}
{{- end -}}

{{/* The workload of a service's canary: its Deployment, Service, selector labels. */}}
{{- define "agora.canaryName" -}}{{- printf "%s-canary" . -}}{{- end -}}

{{/* Every workload that runs a service's pods, by the name of its Deployment and Service
(a service's, and its canary's when it has one), as JSON: {name: merged service entry}. */}}
{{- define "agora.workloads" -}}
{{- $workloads := dict -}}
{{- range $name, $service := fromJson (include "agora.services" .) -}}
{{- $_ := set $workloads $name $service -}}
{{- if $service.canary.enabled -}}
{{- $_ := set $workloads (include "agora.canaryName" $name) $service -}}
{{- end -}}
{{- end -}}
{{- toJson $workloads -}}
{{- end -}}

{{/* "true" when a service's canary is analysed by the hook Job: an A/B test is not (its
owner ends it, by promoting or rolling back). (the merged service entry) */}}
{{- define "agora.canaryAnalysed" -}}
{{- if and .canary.enabled .canary.analysis.enabled (not .canary.ab.enabled) -}}true{{- end -}}
{{- end -}}

{{- define "agora.anyCanaryAnalysed" -}}
{{- range $name, $service := fromJson (include "agora.services" .) -}}
{{- include "agora.canaryAnalysed" $service -}}
{{- end -}}
{{- end -}}

{{/* A service's canary Ingress, whose weight the analysis sets. (dict root name) */}}
{{- define "agora.canaryIngress" -}}
{{- printf "%s-%s-canary" (include "agora.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The names of the services whose `key` (postgres, redis) is true (with "workloads"
true, their canaries' workloads too: the clients of PostgreSQL or Redis), as JSON:
fromJson (include "agora.servicesUsing" (dict "root" $ "key" "postgres")) */}}
{{- define "agora.servicesUsing" -}}
{{- $names := list -}}
{{- range $name, $service := fromJson (include "agora.services" .root) -}}
{{- if get $service $.key -}}
{{- $names = append $names $name -}}
{{- if and $.workloads $service.canary.enabled -}}
{{- $names = append $names (include "agora.canaryName" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "names" $names) -}}
{{- end -}}

{{/* The databases the enabled services use, each once and in order, as JSON:
fromJson (include "agora.databases" $) -> {"names": [...]} */}}
{{- define "agora.databases" -}}
{{- $names := list -}}
{{- range $name, $service := fromJson (include "agora.services" .) -}}
{{- if $service.postgres -}}{{- $names = append $names $service.database -}}{{- end -}}
{{- end -}}
{{- toJson (dict "names" ($names | uniq | sortAlpha)) -}}
{{- end -}}

{{- define "agora.anyService" -}}
{{- if (fromJson (include "agora.servicesUsing" .)).names -}}true{{- end -}}
{{- end -}}

{{/* "true" when a bundled PostgreSQL is rendered: enabled and some service uses it. */}}
{{- define "agora.bundledPostgres" -}}
{{- if and .Values.postgresql.enabled (include "agora.anyService" (dict "root" . "key" "postgres")) -}}true{{- end -}}
{{- end -}}

{{- define "agora.bundledRedis" -}}
{{- if and .Values.redis.enabled (include "agora.anyService" (dict "root" . "key" "redis")) -}}true{{- end -}}
{{- end -}}

{{- define "agora.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* A service's image: its own `image` (or a canary's), else `image:`. (dict root image) */}}
{{- define "agora.serviceImage" -}}
{{- $image := .image | default dict -}}
{{- $global := .root.Values.image -}}
{{- printf "%s:%s" ($image.repository | default $global.repository) ($image.tag | default $global.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/*
A generated password: the one already stored in the Secret when it exists (so upgrades
keep it), otherwise a new random one. (dict root secret key)
*/}}
{{- define "agora.password" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- $stored := "" -}}
{{- if $existing -}}{{- $stored = get (default dict $existing.data) .key -}}{{- end -}}
{{- if $stored -}}
{{- $stored | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- PostgreSQL */}}

{{- define "agora.postgres.secretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "agora.componentName" (dict "root" . "component" "postgresql") -}}
{{- else -}}
{{- required "externalDatabase.existingSecret is required when postgresql.enabled is false" .Values.externalDatabase.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "agora.postgres.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "agora.componentName" (dict "root" . "component" "postgresql") -}}
{{- else -}}
{{- required "externalDatabase.host is required when postgresql.enabled is false" .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "agora.postgres.port" -}}
{{- if .Values.postgresql.enabled -}}5432{{- else -}}{{- .Values.externalDatabase.port -}}{{- end -}}
{{- end -}}

{{/* The DSN of one database, as its role; the password comes from PGPASSWORD. (dict root name) */}}
{{- define "agora.databaseUrl" -}}
{{- $root := .root -}}
{{- $url := printf "postgresql://%s@%s:%s/%s" .name (include "agora.postgres.host" $root) (include "agora.postgres.port" $root) .name -}}
{{- if not $root.Values.postgresql.enabled -}}
{{- $url = printf "%s?sslmode=%s" $url $root.Values.externalDatabase.sslmode -}}
{{- end -}}
{{- $url -}}
{{- end -}}

{{/* PGPASSWORD of one database's role, from the bundled or the existing Secret. (dict root name) */}}
{{- define "agora.databasePasswordEnv" -}}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "agora.postgres.secretName" .root }}
      key: {{ .name }}-password
{{- end -}}

{{/* ---------------------------------------------------------------- Redis */}}

{{- define "agora.redis.host" -}}
{{- if .Values.redis.enabled -}}
{{- include "agora.componentName" (dict "root" . "component" "redis") -}}
{{- else -}}
{{- required "externalRedis.host is required when redis.enabled is false" .Values.externalRedis.host -}}
{{- end -}}
{{- end -}}

{{- define "agora.redis.port" -}}
{{- if .Values.redis.enabled -}}6379{{- else -}}{{- .Values.externalRedis.port -}}{{- end -}}
{{- end -}}

{{/* REDIS_PASSWORD (when there is one) and REDIS_URL, which embeds it. */}}
{{- define "agora.redisEnv" -}}
{{- $secret := "" -}}
{{- $key := "redis-password" -}}
{{- $scheme := "redis" -}}
{{- $database := 0 -}}
{{- if .Values.redis.enabled -}}
{{- $secret = include "agora.componentName" (dict "root" . "component" "redis") -}}
{{- else -}}
{{- $secret = .Values.externalRedis.existingSecret -}}
{{- $key = .Values.externalRedis.existingSecretPasswordKey -}}
{{- $database = .Values.externalRedis.database -}}
{{- if .Values.externalRedis.tls -}}{{- $scheme = "rediss" -}}{{- end -}}
{{- end -}}
{{- $address := printf "%s:%s/%v" (include "agora.redis.host" .) (include "agora.redis.port" .) $database -}}
{{- if $secret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
- name: REDIS_URL
  value: {{ printf "%s://:$(REDIS_PASSWORD)@%s" $scheme $address | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "%s://%s" $scheme $address | quote }}
{{- end }}
{{- end -}}

{{/* ---------------------------------------------------------------- pods */}}

{{/* An init container that waits until PostgreSQL accepts connections (pg_isready), for
as long as a first install takes to pull and initialise it: a worker's own start waits
30 s at most (services/kit/db.py), and the startup probe a minute. PGUSER: without one
libpq asks the OS for the user's name, which the image does not know. (dict root name) */}}
{{- define "agora.waitForPostgres" -}}
{{- $root := .root -}}
- name: wait-for-postgresql
  image: {{ printf "%s:%s" $root.Values.postgresql.image.repository $root.Values.postgresql.image.tag }}
  imagePullPolicy: {{ $root.Values.postgresql.image.pullPolicy }}
  command: [sh, -c, "until pg_isready --quiet --timeout=2; do sleep 1; done"]
  env:
    - {name: PGHOST, value: {{ include "agora.postgres.host" $root | quote }}}
    - {name: PGPORT, value: {{ include "agora.postgres.port" $root | quote }}}
    - {name: PGUSER, value: {{ .name | quote }}}
  resources:
    {{- toYaml $root.Values.postgresql.waitResources | nindent 4 }}
  securityContext:
    {{- include "agora.containerSecurityContext" $root | nindent 4 }}
{{- end -}}

{{- define "agora.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* PSS "restricted" plus a read-only root filesystem. */}}
{{- define "agora.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The UID of the agora image (Dockerfile: ARG UID). */}}
{{- define "agora.uid" -}}10001{{- end -}}

{{/* Where the kit keeps prometheus multiprocess files: an emptyDir, like /tmp. */}}
{{- define "agora.metricsDir" -}}/run/agora/metrics{{- end -}}

{{/* The writable directories of a read-only agora container. */}}
{{- define "agora.scratchVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: metrics
  mountPath: {{ include "agora.metricsDir" . }}
{{- end -}}

{{- define "agora.scratchVolumes" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
- name: metrics
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- end -}}


{{/* ---------------------------------------------------------------- backends */}}

{{/* The Service of a StatefulSet backend and its headless twin (the StatefulSet's
serviceName). (dict root name selectorName labels port portName) */}}
{{- define "agora.backendServices" -}}
{{- range $suffix := list "" "-headless" }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $.name }}{{ $suffix }}
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- $.labels | nindent 4 }}
spec:
  {{- if $suffix }}
  clusterIP: None
  {{- else }}
  type: ClusterIP
  {{- end }}
  selector:
    {{- include "agora.selectorLabels" (dict "root" $.root "name" $.selectorName) | nindent 4 }}
  ports:
    - name: {{ $.portName }}
      port: {{ $.port }}
      targetPort: {{ $.portName }}
      protocol: TCP
{{- end }}
{{- end -}}

{{/* The ports of the exporter sidecars of the bundled PostgreSQL and Redis. */}}
{{- define "agora.postgresExporterPort" -}}9187{{- end -}}
{{- define "agora.redisExporterPort" -}}9121{{- end -}}

{{/* What makes Prometheus scrape a backend's exporter sidecar (pod annotations). */}}
{{- define "agora.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ . | quote }}
prometheus.io/path: /metrics
{{- end -}}

{{/* A backend only its clients reach: ingress from the named pods of this release on
one port, and from Prometheus on metricsPort when it has an exporter; no egress.
(dict root name selectorName labels port clients [metricsPort]) */}}
{{- define "agora.backendNetworkPolicy" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- .labels | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "agora.selectorLabels" (dict "root" .root "name" .selectorName) | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector:
            matchExpressions:
              - {key: app.kubernetes.io/instance, operator: In, values: [{{ .root.Release.Name }}]}
              - {key: app.kubernetes.io/name, operator: In, values: {{ toJson .clients }}}
      ports: [{port: {{ .port }}, protocol: TCP}]
    {{- if and .metricsPort (or .root.Values.prometheus.enabled .root.Values.networkPolicy.extraPrometheus) }}
    - from:
        {{- if .root.Values.prometheus.enabled }}
        - podSelector:
            matchLabels:
              {{- include "agora.selectorLabels" (dict "root" .root "name" "prometheus") | nindent 14 }}
        {{- end }}
        {{- with .root.Values.networkPolicy.extraPrometheus }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports: [{port: {{ .metricsPort }}, protocol: TCP}]
    {{- end }}
  egress: []
{{- end -}}

{{/* ---------------------------------------------------------------- bearer tokens */}}

{{/* The Secret with the token keypair (mounted by `auth: sign` services only) and the
ConfigMap with its public half (mounted by every `auth: verify` or `sign` service). */}}
{{- define "agora.auth.secretName" -}}
{{- include "agora.componentName" (dict "root" . "component" "auth-signing") -}}
{{- end -}}

{{- define "agora.auth.publicName" -}}
{{- include "agora.componentName" (dict "root" . "component" "auth-public") -}}
{{- end -}}

{{- define "agora.auth.dir" -}}/etc/agora/auth{{- end -}}
{{- define "agora.auth.signingDir" -}}/etc/agora/auth-signing{{- end -}}

{{/* "true" when some service verifies or signs tokens. */}}
{{- define "agora.auth.used" -}}
{{- range $name, $service := fromJson (include "agora.services" .) -}}
{{- if ne $service.auth "none" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- impersonation */}}

{{/* The Secret with the credential that lets a service act for any user
(services/kit/impersonation.py): mounted by users (`impersonation: issue`) and the
`impersonation: use` services (socialcompat) only, and rendered only while one of the
latter is enabled: without it users has no internal routes at all. */}}
{{- define "agora.impersonation.secretName" -}}
{{- include "agora.componentName" (dict "root" . "component" "impersonation") -}}
{{- end -}}

{{- define "agora.impersonation.dir" -}}/etc/agora/impersonation{{- end -}}

{{/* "true" when an enabled service uses the credential. */}}
{{- define "agora.impersonation.used" -}}
{{- range $name, $service := fromJson (include "agora.services" .) -}}
{{- if eq $service.impersonation "use" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" when this service (.service, with .root) gets the credential mounted. */}}
{{- define "agora.impersonation.mounted" -}}
{{- if and (ne .service.impersonation "none") (include "agora.impersonation.used" .root) -}}true{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- tracing */}}

{{/* Where the services export spans (OTEL_EXPORTER_OTLP_ENDPOINT): the release's
collector when enabled, else tracing.endpoint; empty: tracing off (docs/tracing.md). */}}
{{- define "agora.tracingEndpoint" -}}
{{- if .Values.tracing.collector.enabled -}}
{{- printf "http://%s:4318" (include "agora.componentName" (dict "root" . "component" "otel-collector")) -}}
{{- else -}}
{{- .Values.tracing.endpoint -}}
{{- end -}}
{{- end -}}
