"""Fixtures for provisioning tests; the image helpers live in provision_images.py."""

from provision_images import device_file, image

__all__ = ["device_file", "image"]
