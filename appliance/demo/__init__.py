"""`appliance demo`: the test double, a simulated kiosk and a live panel, in one command."""
