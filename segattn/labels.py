"""Label conventions, shared by data, metrics, losses and figures (no dependencies).

A mask is an integer array of class indices, H×W (int64 once it is a tensor): 0..K−1 are the K
classes, in the order of the data set's `classes`, and IGNORE_INDEX marks pixels that are neither
trained on nor scored (crowd regions, unlabelled borders, padding). With 255 reserved, a mask held
as uint8 carries at most 255 classes (0..254).
"""

IGNORE_INDEX = 255
