"""The crawler's metrics (beside the kit's: requests, the stream consumer's lag and
pending entries, the outbox): multiprocess-safe, as every Agora metric."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# crawler (the API)
SUBMITTED_TASKS = Counter("crawler_tasks_submitted_total", "Tasks accepted (202).")
SUBMITTED_URLS = Counter("crawler_urls_submitted_total", "Distinct URLs of accepted tasks.")
TASKS = Gauge(
    "crawler_tasks",
    "Tasks by status, counted in the database every CRAWLER_STATS_INTERVAL.",
    ("status",),
    multiprocess_mode="livemostrecent",
)
PENDING_URLS = Gauge(
    "crawler_pending_urls",
    "URLs of pending and running tasks not checked yet (the queue's depth).",
    multiprocess_mode="livemostrecent",
)

# crawler-worker
CHECKS = Counter("crawler_urls_checked_total", "URL checks finished, by outcome.", ("outcome",))
DURATION = Histogram(
    "crawler_check_duration_seconds",
    "Time one URL check took, retries and redirects included, by outcome.",
    ("outcome",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
RETRIES = Counter("crawler_check_retries_total", "Attempts repeated after a 429, 5xx or timeout.")
IN_FLIGHT = Gauge(
    "crawler_checks_in_flight",
    "Attempts running now; over crawler_check_slots, the workers' utilisation.",
    multiprocess_mode="livesum",
)
SLOTS = Gauge(
    "crawler_check_slots",
    "Attempts the workers run at once at most (CRAWLER_WORKER_CONCURRENCY each).",
    multiprocess_mode="livesum",
)
RECORDED = Counter(
    "crawler_results_recorded_total",
    "URL results recorded; a check whose URL already had one is `duplicate`, one of a"
    " cancelled or deleted task `discarded`.",
    ("outcome",),
)
READY = Counter("crawler_tasks_ready_total", "Tasks that became ready (each exactly once).")
SKIPPED = Counter(
    "crawler_urls_skipped_total", "Queued URLs not checked: their task was cancelled or deleted."
)
