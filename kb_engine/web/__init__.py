"""The web console served by `kb serve`: chat (what the customer sees), agent assist, content.

Server-rendered shells (Jinja2) with plain CSS and a little vanilla JavaScript; no build step, no
external URL. The shells carry no data: every action goes through the JSON API from the browser,
with the user's API key, so a page needs the role its actions need.
"""
