"""``python -m tts_utils.collect CONFIG.yaml`` and ``python -m tts_utils.collect merge DIR``."""

from tts_utils.collect.run import main

if __name__ == "__main__":  # not when a worker process (collect's pool) re-imports the main module
    raise SystemExit(main())
