"""Indicators per timeframe, multi-timeframe assembly without lookahead, the feature spec."""
