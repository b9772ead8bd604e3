"""Room links: the LiveKit SDK adapter (livekit.py) and a recording fake (fake.py)."""
