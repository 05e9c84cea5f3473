"""Runs an engine over a data directory until the pipeline's latest execution ends.

usage: python crash_driver.py DATA_DIR DECLARATION_JSON
Creates the pipeline if the data directory does not have it yet (which starts an execution),
otherwise only recovers. Prints the final status as the last line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from caravan.engine.runtime import open_engine
from caravan.errors import PipelineNotFoundError


async def main(data_dir: Path, declaration: Path) -> None:
    request = json.loads(declaration.read_text())
    name = request["pipeline"]["name"]
    async with open_engine(data_dir=data_dir) as engine:
        try:
            await engine.call("GetPipeline", {"name": name})
        except PipelineNotFoundError:
            await engine.call("CreatePipeline", request)
        print("engine running", flush=True)
        while True:
            body = await engine.call("ListPipelineExecutions", {"pipelineName": name})
            latest = body["pipelineExecutionSummaries"][0]
            if latest["status"] not in ("InProgress", "Stopping"):
                print(latest["status"], latest.get("statusSummary", ""), flush=True)
                return
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
