"""What the email adapters share: rendering, composing the MIME message, handing it to SMTP."""
