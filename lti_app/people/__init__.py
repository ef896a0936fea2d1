"""One person's data as a whole: what an operator exports or erases on request."""
