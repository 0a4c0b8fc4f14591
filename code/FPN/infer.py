"""FPN probabilities for test.json and the fold's validation images (= `trashseg infer`)."""

from trashseg.cli.folder import run_folder

if __name__ == "__main__":
    run_folder(__file__, "infer")
