"""Session core: the room state machine, its runner, backoff and tokens.

Names other modules use (all in `appliance.session.model`):
- Enums: RoomState, Intent, Fault, Quality, TrackKind, TrackState, ButtonName (+ groups
  ACTIVE_ROOM_STATES, JOINED_ROOM_STATES, CONNECTION_FAULTS, ON_AIR_TRACK_STATES).
- Events (frozen, first field `at: float` = time.monotonic()): ButtonPressed(button, long),
  TrackStateChanged(kind, state, reason), LocalTrackMuted(kind, muted), MuteRequestedByServer,
  ConnectionQualityChanged(quality), DegradationChanged(rung, label), ConnectRequested,
  RoomConnected, ConnectFailed, RoomReconnecting/Reconnected/Disconnected, ParticipantJoined/Left,
  TokenRefreshed, NetworkChanged(up), MediaStalled, RetryScheduled, RetryTimerFired, TickElapsed,
  StopRequested.
- Effects: Connect, Disconnect, ScheduleRetry, CancelRetry, PublishTracks, SetMicrophoneMuted,
  SetCameraEnabled, Shutdown.  State (frozen, OBSERVED): .room .intent .fault .quality .remotes
  .camera .microphone .mic_muted .mic_mute_wanted .camera_privacy .video_live .mic_live
  .degradation_rung .attempt .next_retry_at; .as_dict() snapshot; status_line(state).
- Post events with `Runner.post(ev)` (thread-safe); read state with `Runner.state` (immutable),
  follow it with `Runner.add_listener(fn)`; media implements `session.media.MediaLayer`
  (`appliance.media.MediaManager`, chosen by `session.app.build_media`); plugins are
  `async attach(runner, stack)`; `session.app.default_plugins()` lists them.
"""
