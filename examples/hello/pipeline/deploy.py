"""A deploy step as a Lambda-style handler: it receives the CodePipeline.job event."""

import json


def handler(event, context):
    job = event["CodePipeline.job"]
    params = json.loads(job["data"]["actionConfiguration"]["configuration"]["UserParameters"])
    print(f"deploying package {params['package']} to {params['environment']}")
    return {
        "summary": f"deployed {params['package']} to {params['environment']}",
        "outputVariables": {"Environment": params["environment"]},
    }
