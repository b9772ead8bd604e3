"""Remote operations over LiveKit: health as participant attributes, operator RPC methods."""
