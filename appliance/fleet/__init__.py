"""The fleet service: device enrolment, the token endpoint, presence and a live console.

`appliance fleet serve` answers the kiosks' token endpoint (`[livekit] token_url`), receives
LiveKit webhooks, polls RoomService for the kiosks' health attributes and serves the operators'
console; every bit of state is in the database (`appliance.fleet.store`).
"""
