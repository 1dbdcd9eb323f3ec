"""English names of countries, by ISO 3166-1 alpha-2 code, for placing a customer record in a market by
its country (``market_hints``): Salesforce holds ``MailingCountry`` as typed (``United Kingdom``), the
commerce platforms hold ISO codes. Matching is case-insensitive."""

COUNTRY_NAMES: dict[str, list[str]] = {
    "US": ["United States", "United States of America", "USA", "U.S.A.", "U.S."],
    "GB": ["United Kingdom", "UK", "Great Britain", "England", "Scotland", "Wales", "Northern Ireland"],
    "DE": ["Germany", "Deutschland"],
    "FR": ["France"],
    "NL": ["Netherlands", "The Netherlands", "Nederland", "Holland"],
    "BE": ["Belgium"],
    "AT": ["Austria"],
    "CH": ["Switzerland"],
    "IE": ["Ireland"],
    "ES": ["Spain"],
    "IT": ["Italy"],
    "PT": ["Portugal"],
    "LU": ["Luxembourg"],
    "DK": ["Denmark"],
    "SE": ["Sweden"],
    "NO": ["Norway"],
    "FI": ["Finland"],
    "PL": ["Poland"],
    "CZ": ["Czechia", "Czech Republic"],
    "CA": ["Canada"],
    "MX": ["Mexico"],
    "BR": ["Brazil"],
    "AU": ["Australia"],
    "NZ": ["New Zealand"],
    "JP": ["Japan"],
    "SG": ["Singapore"],
    "IN": ["India"],
    "ZA": ["South Africa"],
}
