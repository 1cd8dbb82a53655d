"""Run llm-sse: ``python app.py --help`` lists every setting."""

import sys

from sse.cli import main

if __name__ == "__main__":
    sys.exit(main())
