"""The documented development key pair of the double (no imports, so the CLI stays cheap)."""

# Printed by `appliance devserver` and the double's default. Anyone who reads the README knows
# it, which is the point: never use it for anything reachable from another machine.
DEV_API_KEY = "devkey"
DEV_API_SECRET = "devsecret-room-kiosk-appliance-0123456789abcdef"
