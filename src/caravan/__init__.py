"""caravan: continuous delivery for serverless applications.

Pipelines declared in the AWS CodePipeline structure run with CodePipeline's semantics, and the
applications they deliver land on an embedded serverless platform. See README.md.
"""

__version__ = "0.1.0"
