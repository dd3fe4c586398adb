from parcours_runtime.service import run

from parcours_portal.app import definition
from parcours_portal.config import Settings

run(definition(), Settings())
