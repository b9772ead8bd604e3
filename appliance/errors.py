"""The project's exception tree: one root, leaves that also inherit the builtin they resemble."""


class ApplianceError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(ApplianceError, ValueError):
    """Configuration that cannot be used; carries one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class TokenError(ApplianceError, RuntimeError):
    """A LiveKit access token could not be obtained (endpoint down, bad answer, bad secret)."""


class AuthRejected(TokenError):
    """The server or token endpoint refused our credentials (HTTP 401/403)."""


class DeviceError(ApplianceError, OSError):
    """A camera, microphone, speaker or GPIO device failed or vanished."""


class DevServerError(ApplianceError, RuntimeError):
    """The LiveKit-protocol test double (`appliance devserver`) failed or refused a request."""
