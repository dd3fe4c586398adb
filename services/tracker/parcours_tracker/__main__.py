from parcours_runtime.service import run

from parcours_tracker.app import definition
from parcours_tracker.config import Settings

run(definition(), Settings())
