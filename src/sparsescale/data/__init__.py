"""Data: text corpora from local files (data.text), tokenised and cached
(data.corpus), T5 span corruption (data.span_corruption), images
(data.images) and single-pass batch loaders (data.loaders)."""
