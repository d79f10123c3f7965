"""The planner's side of a deployment: signed installer profiles and the self-contained installer.

A planner decides how a donated machine is divided (vessels as percents of the donation, their owners and
users) and which overlay nodes new nodes join; `profile.py` turns that into a signed file, `installer.py`
packs it with seattle into one file a donor runs.
"""
