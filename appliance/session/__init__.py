"""Session core: the pure room machine (sole owner of session state), its runner, backoff, tokens.

Names other modules use (all importable from `appliance.session.model`; defined in `state`,
`events` and `effects`):
- Enums: RoomState, Intent, Fault, Quality, TrackKind, TrackState, ButtonName, JoinFailure
  (+ groups JOINED_ROOM_STATES, CONNECTION_FAULTS, ON_AIR_TRACK_STATES).
- Events (facts, frozen, first field `at: float` = time.monotonic()): ButtonPressed,
  TrackStateChanged, LocalTrackMuted, MuteApplied, ConnectionQualityChanged, ConnectRequested,
  RoomConnected, ConnectFailed, RoomReconnecting/Reconnected/Disconnected,
  ParticipantJoined/Left, TokenRefreshed, NetworkChanged, MediaProgressSampled,
  RetryTimerFired, TickElapsed, StopRequested.
- Effects: Connect, Disconnect, ScheduleRetry, CancelRetry, PublishTracks, SetTrackMuted,
  SetCameraEnabled, SetVideoMode, Shutdown.
- State (frozen, observed): see its fields; `appliance.session.truth` says what the LEDs may
  claim from it; `status_line(state)` is the STATUS= line.
- Post events with `Runner.post(ev)` (thread-safe); read `Runner.state`; follow it with
  `Runner.add_listener(fn)` (returns its remover). `appliance.kiosk` wires everything together.
"""
