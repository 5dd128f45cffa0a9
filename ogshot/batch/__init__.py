"""``ogshot build``: pre-generate the images of a manifest into a folder or a bucket."""
