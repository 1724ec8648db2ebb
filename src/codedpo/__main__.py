"""``python -m codedpo VERB ...`` is ``codedpo VERB ...`` (``accelerate launch -m codedpo
train``)."""

import sys

from codedpo.cli import main

sys.exit(main())
