"""Jobs that run the stages: check, import (run and retry), nightly with its config."""
