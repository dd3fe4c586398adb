from parcours_channels.app import definition
from parcours_channels.config import Settings
from parcours_runtime.service import run

run(definition(), Settings())
