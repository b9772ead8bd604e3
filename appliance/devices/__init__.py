"""Hardware adapters: GPIO buttons and LEDs (gpiozero) and board profiles."""
