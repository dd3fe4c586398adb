"""The bounce endpoint: an SMTP server taking the bounces that come back to our return paths,
and the intake that ties each one to the message it is about."""
