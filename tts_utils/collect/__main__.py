"""``python -m tts_utils.collect CONFIG.yaml`` and ``python -m tts_utils.collect merge DIR``."""

from tts_utils.collect.run import main

raise SystemExit(main())
