"""Sites: serving a release by Host (sites), the path-matching rules (site_match), and claimed
subdomains (subdomains)."""
