"""What lives on disk: files written atomically, image files, frame folders, videos, stacks of
high-resolution frames, the stage cache and its folder, run folders."""
