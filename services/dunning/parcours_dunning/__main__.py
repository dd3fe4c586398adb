from parcours_runtime.service import run

from parcours_dunning.app import definition
from parcours_dunning.config import Settings

if __name__ == "__main__":
    run(definition(), Settings())
