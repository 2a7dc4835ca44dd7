# gunicorn's settings for the peers: the address and worker count devstack gives every
# replica (BIND_HOST, PORT, WEB_CONCURRENCY: the same as catalog's); everything else is
# gunicorn's default, as a user starting it would have it (no access log).
import os

bind = f"{os.environ.get('BIND_HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
