"""Open data: releases through a privacy gate, the public portal, the query API and data requests."""
