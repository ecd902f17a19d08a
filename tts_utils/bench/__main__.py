import sys

from tts_utils.bench.cli import main

sys.exit(main())
