"""``python -m facestream.pipeline.config --markdown > docs/config.md``."""

import sys

from .markdown import config_markdown

if "--markdown" in sys.argv:
    print(config_markdown())
else:
    sys.exit("usage: python -m facestream.pipeline.config --markdown")
