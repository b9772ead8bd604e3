"""Per-device provisioning: write device files into images, import them at first boot."""
