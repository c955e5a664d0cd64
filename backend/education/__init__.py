"""Health education: the article library and sending articles to patients."""
