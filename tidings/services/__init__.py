"""The use cases, one module each: they take a request the API has validated, apply ``core``'s rules and talk to the
ports. The API and the faces call these, never a backend."""
