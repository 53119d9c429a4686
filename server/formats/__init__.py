"""A sharpened result in OpenAI's wire formats (bodies, chunks, events, errors), below the service."""
