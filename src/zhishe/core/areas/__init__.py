"""The platform's area list: district, subdistrict, community, building and unit, as one tree."""
