from parcours_router.app import definition
from parcours_router.config import Settings
from parcours_runtime.service import run

run(definition(), Settings())
