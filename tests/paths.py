"""Where the tests find the repository and the event fixtures, whatever folder a test sits in."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = ROOT / "tests" / "events"
