"""A scan and an undo: discovery, what changed, worker jobs, classification, policy, writes, reports.

Uses audio/, classify/, tags/ and store/; never training/.
"""
