"""Server-rendered pages: the respondent's survey, the dev phone, the console. Work without JS."""
