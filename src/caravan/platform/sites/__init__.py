"""Static sites on the local serverless platform, with S3 website semantics.

    store = SiteStore(data_dir / "sites")
    store.publish("dromedary-test", Path("dist/site.zip"),
                  config=site_config("/api/", commit_id, execution_id), version_label=commit_id)
    app = site_app(store, "dromedary-test")            # ASGI
    store.activate("dromedary-test", "3")              # rollback, instantly

Publishing is atomic (one pointer replacement), clean (stale files vanish with the switch) and
keeps every version for rollback (store.py); serving follows S3's website endpoint (app.py).
"""

from caravan.platform.sites.app import ERROR_DOCUMENT, INDEX_DOCUMENT, site_app
from caravan.platform.sites.config import (
    CONFIG_CACHE_CONTROL,
    CONFIG_CONTENT_TYPE,
    CONFIG_NAME,
    encode_config,
    site_config,
)
from caravan.platform.sites.store import (
    DEFAULT_KEEP,
    FileMeta,
    SiteNotFoundError,
    SiteStore,
    SiteVersion,
    SiteVersionNotFoundError,
    content_type_for,
)

__all__ = [
    "CONFIG_CACHE_CONTROL",
    "CONFIG_CONTENT_TYPE",
    "CONFIG_NAME",
    "DEFAULT_KEEP",
    "ERROR_DOCUMENT",
    "INDEX_DOCUMENT",
    "FileMeta",
    "SiteNotFoundError",
    "SiteStore",
    "SiteVersion",
    "SiteVersionNotFoundError",
    "content_type_for",
    "encode_config",
    "site_app",
    "site_config",
]
