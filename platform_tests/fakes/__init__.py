"""Local HTTP servers that speak enough of real market APIs for the real client libraries."""
