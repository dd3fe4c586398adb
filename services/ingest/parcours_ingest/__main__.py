from parcours_runtime.service import run

from parcours_ingest.app import definition
from parcours_ingest.config import Settings

run(definition(), Settings())
