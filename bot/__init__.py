"""Microwish: the WeChat micro-wish (微心愿) bot."""
