"""An S3-compatible API subset over caravan's artifact store, for boto3 and the AWS CLI.

``s3_app(store, settings)`` is the ASGI app; ``S3Settings`` holds its options, including the
``authorize`` and ``secret_for`` hooks (see auth.py for their contracts).
"""

from caravan.server.s3.app import S3App, s3_app
from caravan.server.s3.auth import Authorize, SecretLookup, allow_all
from caravan.server.s3.context import S3Settings

__all__ = ["Authorize", "S3App", "S3Settings", "SecretLookup", "allow_all", "s3_app"]
